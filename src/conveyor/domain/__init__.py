"""The domain: states, the transition table, decisions and errors. Pure: no I/O, no clock."""
