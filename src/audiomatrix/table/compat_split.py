"""Which of compat's code remedies a check needs, as the run that split them proves it.

The runner reruns each check that failed raw and passed with compat with smaller sets of
compat's remedies, smallest first (audiomatrix.suite.split). Here, at report time, those runs
become a claim per check: the minimal sets, each proven by a run with only that set, the
failing runs of every smaller size showing that nothing less works; or, where no smaller set
passed, that no set smaller than all of compat was proven.
"""

from __future__ import annotations

from audiomatrix.records.compatibility import ProvenSet, RemedyProof
from audiomatrix.suite.schema import FAILED, RemedySplit, Status
from audiomatrix.suite.split import minimal_sets


def proof(
    split: RemedySplit | None, check: str, raw: Status | None, compat: Status | None, logs: str
) -> RemedyProof | None:
    """The claim a run's split makes for one check; None for a check it had no reason to
    split (not failed raw and passed with compat) or a run from before the split. `logs` is
    the folder the run's log paths are relative to, as the table names it."""
    if split is None or raw not in FAILED or compat != "pass":
        return None
    runs = [c for c in split.checks if c.check == check]
    tried = [(tuple(c.remedies), c.status) for c in runs]
    found = {tuple(c.remedies): c.log for c in runs}
    return RemedyProof(
        applicable=list(split.applicable),
        minimal=[
            ProvenSet(remedies=list(s), log=f"{logs}/{found[s]}" if found[s] else None)
            for s in minimal_sets(tried)
        ],
        tried=len(runs),
    )


def _names(proven: ProvenSet, link: bool) -> str:
    names = " + ".join(f"`{name}`" for name in proven.remedies)
    return f"[{names}]({proven.log})" if link and proven.log else names


def summary(found: RemedyProof, link: bool = False) -> str:
    """One phrase for people: `proven alone: checkpoint_globals`, `proven together: a + b`,
    or that no smaller set than all was proven; with `link`, each set links (Markdown) to the
    run that proves it."""
    if not found.minimal:
        why = "" if found.applicable else " (compat says none applies here)"
        return f"no set smaller than all of compat proven{why}"
    sets = " or ".join(_names(s, link) for s in found.minimal)
    return f"proven {'alone' if len(found.minimal[0].remedies) == 1 else 'together'}: {sets}"
