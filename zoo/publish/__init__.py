"""Publishing checkpoints: manifest entries measured at registration
(`entries`) and registering a finished run as a shipped checkpoint
(`registration`). Maintainer code: nothing that `import zoo` loads imports
it. SavedModel exports (zoo.export) sit lower, beside the runtime code,
since users export their own models and the benchmarks measure exports."""
