"""Private helpers shared by every layer: array-API plumbing (:mod:`.array`) and argument
validation (:mod:`.validation`)."""
