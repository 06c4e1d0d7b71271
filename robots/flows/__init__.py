"""Flows: new jobs declared in files (a source of items, typed reads, rules in CEL, actions
done exactly once) that run on the engine like the robots. So far: the rules (``rules``)."""
