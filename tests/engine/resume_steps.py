"""Dialog steps of ``flows/resume.yaml``: a real ``StepRegistry`` of plain functions."""

from __future__ import annotations

from engine.steps import StepContext, StepResult

from .fakes import CountingSteps

PIN = "1234"


class ResumeSteps(CountingSteps):
    """``demo.check`` records a proof (``unlocked``) when the PIN is right; ``demo.apply`` changes the
    secret only with that proof, as a protected dialog step does."""

    def __init__(self) -> None:
        super().__init__()
        self.changed_to: list[str] = []
        self.placed = 0
        self.transfers = 0
        self._steps = {
            "demo.one": lambda ctx: StepResult("ok", {"qty": "1"}),
            "demo.place": self._place,
            "demo.require": lambda ctx: StepResult("ok", {"unlocked": None, "after": ctx.params["after"]}),
            "demo.check": lambda ctx: StepResult("ok", {"unlocked": "yes"}) if ctx.secrets.get("pin") == PIN
            else StepResult("wrong"),
            "demo.apply": self._apply,
            "demo.payee": lambda ctx: StepResult("ok", {"payee": "Awa"}),
            "demo.transfer": self._transfer,
            "demo.raise": self._raise,
        }

    def _place(self, ctx: StepContext) -> StepResult:
        self.placed += 1
        return StepResult("ok")

    def _apply(self, ctx: StepContext) -> StepResult:
        if ctx.data.get("unlocked") != "yes":
            return StepResult("pin_required")
        self.changed_to.append(ctx.secrets["new_secret"])
        return StepResult("ok", {"unlocked": None})

    def _transfer(self, ctx: StepContext) -> StepResult:
        if ctx.data.get("unlocked") != "yes":
            return StepResult("pin_required")
        self.transfers += 1
        return StepResult("ok", {"unlocked": None})

    def _raise(self, ctx: StepContext) -> StepResult:
        # What a careless back-end client does: the customer's number in the exception text.
        raise KeyError(f"no customer {ctx.user_id}")

    def outcomes(self, name: str) -> frozenset[str]:
        return frozenset({"ok", "wrong", "pin_required"})
