"""The goals of a benchmark report (tests/bench/*/report.py): each a
ratio a / b held against a limit, printed one per line with its verdict,
then how many were met. A goal whose figures are missing is n/a."""


class Goals:
    def __init__(self):
        self.items = []  # (text, ratio or None, met or None, wanted, detail)

    def add(self, text, a, b, op, limit, detail=""):
        """op is ">=" (at least limit) or "<=" (at most)."""
        r = a / b if a is not None and b else None
        met = None if r is None else (r >= limit if op == ">=" else r <= limit)
        self.items.append((text, r, met, f"{op} {limit}", detail))

    def print(self, width):
        for text, r, met, want, detail in self.items:
            rs = f"{r:.2f}" if r is not None else "n/a"
            verdict = "n/a" if met is None else ("met" if met else "NOT met")
            print(f"  {text:<{width}} {rs:>6} (goal {want:<6}) {verdict:<8} {detail}")
        known = [g for g in self.items if g[2] is not None]
        na = len(self.items) - len(known)
        print(f"  => {sum(1 for g in known if g[2])} of {len(known)} goals met"
              + (f" ({na} n/a)" if na else ""))
