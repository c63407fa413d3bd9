"use strict";
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const tones = new Set(JSON.parse(document.body.dataset.tones));
  const sigs = Object.fromEntries(data.signatures.map((s) => [s.id, s]));
  const rows = Array.from(document.querySelectorAll("#results tbody tr.row"));
  const marks = Array.from(document.querySelectorAll(".glance .mark"));
  const glances = Array.from(document.querySelectorAll(".glance"));
  const missing = Array.from(document.querySelectorAll("#missing tbody tr"));
  const selects = Array.from(document.querySelectorAll("#filters select[data-axis]"));
  const tabs = Array.from(document.querySelectorAll("#views [role=tab]"));
  const search = document.getElementById("search");
  const gpu = document.getElementById("gpu");
  const count = document.getElementById("count");
  const detail = document.getElementById("detail");
  const catalog = JSON.parse(document.getElementById("catalog-data").textContent);
  const ranking = catalogMatching.prepare(catalog);
  const patterns = Object.fromEntries(catalog.entries.map((e) => [e.id, e.pattern]));
  const pasted = document.getElementById("pasted");
  const answers = document.getElementById("answers");

  /** What the search finds of a row's errors in `checks`: each first error line and its
   * signature's pattern. */
  function errorText(row, checks) {
    const outcomes = checks.flatMap((name) => row.checks[name] ? [row.checks[name]] : [])
      .flatMap((c) => [c.raw, c.compat]).filter(Boolean);
    return outcomes.flatMap((o) => [o.first_error, patterns[o.signature]]).filter(Boolean)
      .join(" ");
  }

  rows.forEach((tr) => {
    const row = data.rows[Number(tr.dataset.index)];
    tr.dataset.text = (tr.textContent + " " + JSON.stringify(row.versions) + " " +
      JSON.stringify(row.where) + " " + JSON.stringify(row.host) + " " +
      errorText(row, Object.keys(row.checks))).toLowerCase();
  });
  missing.forEach((tr) => { tr.dataset.text = tr.textContent.toLowerCase(); });
  marks.forEach((m) => {
    // A mark is its workload's checks (a check in no workload has a grid of its own).
    const checks = data.workloads[m.dataset.workload] || [m.dataset.workload];
    const errors = m.dataset.row === undefined ? "" : errorText(data.rows[m.dataset.row], checks);
    m.dataset.text = (m.title + " " + errors).toLowerCase();
  });

  function matches(node) {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    return selects.every((s) => !s.value || s.dataset.axis === "where" && !node.dataset.where
                                || node.dataset[s.dataset.axis] === s.value)
      && (!gpu.value || (node.dataset.gpu || "").split(" ").includes(gpu.value))
      && words.every((w) => node.dataset.text.includes(w));
  }

  /** A grid after filtering: its tally over the marks shown, each square's count of cells
   * not run, and no empty torch or Python. */
  function refresh(glance) {
    const shown = Array.from(glance.querySelectorAll(".mark")).filter((m) => !m.hidden);
    const ran = shown.filter((m) => m.dataset.row !== undefined);
    const numbers = {
      rows: ran.length,
      raw: ran.filter((m) => m.dataset.status === "pass").length,
      compat: ran.filter((m) => m.dataset.compat === "pass").length,
      fixed: ran.filter((m) => ["raw", "proven"].includes(m.dataset.state)).length,
      pending: shown.length - ran.length,
    };
    glance.querySelectorAll("[data-n]").forEach((b) => { b.textContent = numbers[b.dataset.n]; });
    glance.querySelectorAll("details.waiting").forEach((d) => {
      const n = Array.from(d.querySelectorAll(".mark")).filter((m) => !m.hidden).length;
      d.querySelector(".n").textContent = n;
      d.hidden = n === 0;
    });
    glance.querySelectorAll("tbody tr").forEach((tr) => {
      tr.hidden = !shown.some((m) => m.dataset.torch === tr.dataset.torch);
    });
    const pythons = new Set(shown.map((m) => m.dataset.python));
    glance.querySelectorAll("th[data-python], td[data-python]").forEach((cell) => {
      cell.hidden = !pythons.has(cell.dataset.python);
    });
    const table = glance.querySelector("table.grid");
    if (table) {
      table.hidden = shown.length === 0;
      glance.querySelector(".empty").hidden = shown.length > 0;
    }
  }

  function apply() {
    let shown = 0;
    rows.forEach((tr) => { tr.hidden = !matches(tr); if (!tr.hidden) shown += 1; });
    missing.forEach((tr) => { tr.hidden = !matches(tr); });
    marks.forEach((m) => { m.hidden = !matches(m); });
    glances.forEach(refresh);
    count.textContent = shown + " of " + rows.length + " rows";
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function badge(outcome) {
    if (!outcome) return el("span", "–", "s s-none");
    const tone = tones.has(outcome.status) ? outcome.status : "other";
    return el("span", outcome.status, "s s-" + tone.replace(/ /g, "-"));
  }

  function facts(row) {
    const found = [["os", row.axes.os], ["accelerator", row.axes.accelerator],
      ["stack", row.axes.stack],
      ["where", row.where.kind + (row.where.image ? " " + row.where.image : "")],
      ["image digest", row.where.image_digest],
      ["host", (row.host.distribution || row.host.os) + " · " + row.host.cpu],
      ["GPU", row.host.gpu ? row.host.gpu + " " + (row.host.compute_capability || "") : "CPU"],
      ["CUDA", row.facts.cuda], ["declared GPU archs", row.gpu_arch.join(" ")],
      ["run", row.run + " (started " + row.started + ")" + (row.stale ? ", stale" : "")],
      ["results", row.source], ["lock sha256", row.lock_sha256], ["lock as of", row.as_of],
      ["newer on the index", Object.keys(row.newer).sort()
        .map((k) => k + " " + row.newer[k]).join(", ")]];
    if (row.published) {
      found.push(["pull", "docker pull " + row.published.reference],
        ["SBOM", row.published.sbom.format + " " + row.published.sbom.path]);
    }
    Object.keys(row.versions).sort().forEach((k) => found.push([k, row.versions[k]]));
    const dl = el("dl");
    found.forEach(([k, v]) => { dl.append(el("dt", k), el("dd", v || "–")); });
    return dl;
  }

  function remedies(seen) {
    const part = document.createDocumentFragment();
    if (seen.length) part.append(el("h3", "remedies"));
    seen.forEach((id) => {
      const sig = sigs[id];
      if (!sig) return;
      part.append(el("h4", id + ": " + sig.title), el("p", sig.remedy, "remedy"));
      const refs = el("ul");
      sig.sources.forEach((src) => {
        const li = el("li");
        const a = el("a", src);
        if (/^https:\/\//.test(src)) a.href = src;
        li.append(a);
        refs.append(li);
      });
      part.append(refs);
    });
    return part;
  }

  // Which of compat's remedies the check was proven to need (remedysplit.summary's words).
  function proof(p) {
    if (!p.minimal.length) return "no set smaller than all of compat proven";
    const sets = p.minimal.map((s) => s.remedies.join(" + ")).join(" or ");
    return "proven " + (p.minimal[0].remedies.length === 1 ? "alone" : "together") + ": " + sets;
  }

  function show(index) {
    const row = data.rows[index];
    rows.forEach((tr) => tr.classList.toggle("selected", Number(tr.dataset.index) === index));
    marks.forEach((m) => m.classList.toggle("selected", Number(m.dataset.row) === index));
    const close = el("button", "×", "close");
    close.type = "button";
    close.title = "close";
    close.addEventListener("click", hide);
    detail.replaceChildren(close, el("h2", row.cell), facts(row));
    const seen = [];
    detail.append(el("h3", "checks (raw → compat)"));
    const list = el("ul");
    data.checks.forEach((name) => {
      const c = row.checks[name];
      if (!c) return;
      const li = el("li");
      li.append(el("strong", name + ": "), badge(c.raw), " → ", badge(c.compat));
      if (c.remedies) li.append(" ", el("span", proof(c.remedies), "proof"));
      const fix = rows[index].querySelector(`td[data-check="${name}"] .fix`);
      if (fix) li.append(" ", el("span", fix.textContent.replace("✓", "passes with"), "fix"));
      [c.raw, c.compat].forEach((o) => {
        if (o && o.signature && !seen.includes(o.signature)) seen.push(o.signature);
        if (o && o.first_error) li.append(el("pre", o.first_error));
      });
      const golden = (c.raw && c.raw.golden) || (c.compat && c.compat.golden);
      if (golden) li.append(el("div", goldenText(golden), "golden"));
      list.append(li);
    });
    detail.append(list, remedies(seen));
    detail.hidden = false;
  }

  function goldenText(g) {
    const error = g.error === null ? "another shape" : g.error.toPrecision(2);
    const control = g.control === null ? "none" : g.control.toPrecision(2);
    return `golden output: ${g.verdict}, error ${error} (tolerance ${g.tolerance.toPrecision(2)},` +
      ` control ${control}) against ${g.reference}` + (g.detail ? `: ${g.detail}` : "");
  }

  /** Every check of the table's rows that failed with `id`, raw before compat (as
   * check.evidence.reproduced lists them). */
  function reproduced(id) {
    const seen = [];
    data.rows.forEach((row, index) => Object.entries(row.checks).forEach(([check, c]) => {
      ["raw", "compat"].forEach((mode) => {
        if (c[mode] && c[mode].signature === id) seen.push({ index, cell: row.cell, check, mode });
      });
    }));
    const key = (s) => [s.mode === "raw" ? 0 : 1, s.cell, s.check];
    return seen.sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      return x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0) ||
        (x[2] < y[2] ? -1 : x[2] > y[2] ? 1 : 0);
    });
  }

  /** One catalog match as `check --log` prints it; each row that reproduced it opens. */
  function answer(m, number) {
    const e = m.entry;
    const li = el("li");
    li.dataset.signature = e.id;
    li.dataset.whole = String(m.whole);
    li.dataset.inWarning = String(m.in_warning);
    const head = el("p");
    head.append(el("strong", number + ". " + e.id), ": " + e.title);
    if (!m.whole) head.append(el("em", " (its first part only: paste the whole error)"));
    const where = m.in_warning ? " (inside a warning)" : "";
    const covers = Object.entries(e.affects).map(([k, v]) => k + " " + v).join(", ");
    const dl = el("dl");
    [["matched", m.line + where], ["covers", covers || "no version range"], ["fix", e.remedy]]
      .forEach(([k, v]) => dl.append(el("dt", k), el("dd", v, k === "matched" ? "line" : "")));
    const seen = reproduced(e.id);
    dl.append(el("dt", "reproduced"));
    const dd = el("dd", seen.length ? null : "in no row of the table", "reproduced");
    seen.forEach((s) => {
      const b = el("button", s.cell + " " + s.check + " (" + s.mode + ")", "row-link");
      b.type = "button";
      b.dataset.row = s.index;
      b.addEventListener("click", () => show(s.index));
      dd.append(b);
    });
    dl.append(dd);
    li.append(head, dl);
    return li;
  }

  function answerPasted() {
    if (!pasted.value.trim()) { answers.replaceChildren(); return; }
    const found = catalogMatching.matches(ranking, pasted.value);
    if (!found.length) {
      answers.replaceChildren(el("p", "no catalog entry matches this text", "none"));
      return;
    }
    const list = el("ol");
    found.forEach((m, i) => list.append(answer(m, i + 1)));
    answers.replaceChildren(list);
  }

  function hide() {
    detail.hidden = true;
    rows.concat(marks).forEach((node) => node.classList.remove("selected"));
  }

  function view(name) {
    tabs.forEach((tab) => {
      const on = tab.dataset.view === name;
      tab.setAttribute("aria-selected", String(on));
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
    });
    history.replaceState(null, "", "#" + name);
  }

  selects.forEach((s) => s.addEventListener("change", apply));
  gpu.addEventListener("change", apply);
  search.addEventListener("input", apply);
  pasted.addEventListener("input", answerPasted);
  tabs.forEach((tab) => tab.addEventListener("click", () => view(tab.dataset.view)));
  rows.forEach((tr) => {
    tr.addEventListener("click", () => show(Number(tr.dataset.index)));
    tr.addEventListener("keydown", (e) => { if (e.key === "Enter") show(Number(tr.dataset.index)); });
  });
  marks.filter((m) => m.dataset.row !== undefined).forEach((m) => {
    m.addEventListener("click", () => show(Number(m.dataset.row)));
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") hide(); });
  const addressed = () => view(location.hash === "#list" ? "list" : "grid");
  window.addEventListener("hashchange", addressed);
  addressed();
  apply();
})();
