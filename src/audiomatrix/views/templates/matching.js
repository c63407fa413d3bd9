"use strict";
/* catalog.matching ported: a pasted error -> the catalog entries it shows, most specific first,
 * so the page's box answers as `audiomatrix check --log` does. The expressions come from the
 * page's catalog data (the catalog's patterns, matching's own); "u" makes a browser refuse the
 * Python-only syntax (\Z, (?P<...>), inline flags) instead of reading it as something else. */
const catalogMatching = (function () {
  const compile = (source, flags) => new RegExp(source, "u" + (flags || ""));

  function prepare(data) {
    return {
      entries: data.entries.map((e) => ({
        entry: e,
        pattern: compile(e.pattern),
        all: compile(e.first_part === null ? e.pattern : e.first_part, "g"),
        head: e.first_part === null ? null : compile(e.first_part),
      })),
      colour: compile(data.colour, "g"),
      warningLine: compile(data.warning_line),
      warningEnd: compile(data.warning_end),
      warningSource: compile(data.warning_source),
    };
  }

  /** The numbers of the lines warnings take: from a `...Warning:` line to where it ends. */
  function warningLines(c, lines) {
    const found = new Set();
    let inside = false;
    lines.forEach((line, number) => {
      if (c.warningLine.test(line)) {
        inside = true;
      } else if (inside && c.warningEnd.test(line)) {
        inside = false;
      } else if (inside && c.warningSource.test(line)) {
        found.add(number);
        inside = false;
      }
      if (inside) found.add(number);
    });
    return found;
  }

  /** How one entry shows in `text`: whole, by its first part, or not at all (null). */
  function matchOne(one, text, lines, warned) {
    const whole = one.pattern.test(text);
    if (!whole && (one.head === null || !one.head.test(text))) return null;
    const starts = Array.from(text.matchAll(one.all),
      (m) => (text.slice(0, m.index).match(/\n/g) || []).length);
    const number = starts.slice().reverse().find((n) => !warned.has(n)) ?? starts[starts.length - 1];
    return { entry: one.entry, whole, line: lines[number].trim(), in_warning: warned.has(number) };
  }

  function matches(c, pasted) {
    const text = pasted.replace(/\r\n/g, "\n").replace(/\r/g, "\n").replace(c.colour, "");
    const lines = text.split("\n");
    const warned = warningLines(c, lines);
    let found = c.entries.map((one, order) => [order, matchOne(one, text, lines, warned)])
      .filter(([, m]) => m !== null);
    if (found.some(([, m]) => m.whole)) found = found.filter(([, m]) => m.whole);
    const rank = ([order, m]) => [m.whole ? 0 : 1, m.in_warning ? 1 : 0, order];
    found.sort((a, b) => {
      const [x, y] = [rank(a), rank(b)];
      return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
    });
    return found.map(([, m]) => m);
  }

  return { prepare, matches };
})();
