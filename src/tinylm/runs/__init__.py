"""The run folder: its layout (RunFolder), claiming a new one, resuming one, result.json, and the
Lightning plug-ins that write into it (checkpoint I/O, last.ckpt, the CSV logger) or stop a run
cleanly (a signal, a diverged loss)."""
