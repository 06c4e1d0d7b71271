"""The engine every robot stands on: a run (``run.RobotRun``), its items (``item.Item``:
lifecycle, retries, evidence, the acting protocol), hooks and the shop's clock.

Import from the submodules; this package imports nothing eagerly, so the CLI stays fast.
"""
