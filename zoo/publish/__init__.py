"""Publishing checkpoints: manifest entries measured at registration
(`entries`), registering a finished run (`registration`), and SavedModel
exports for TF Serving and TF Hub (`export`). Maintainer code: nothing that
`import zoo` loads imports it."""
