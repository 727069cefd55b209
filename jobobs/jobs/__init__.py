"""Job kinds that ship with jobobs: imports and exports (one module each)."""
