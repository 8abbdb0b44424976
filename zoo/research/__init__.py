"""Research on the zoo's networks, as library functions the tools call:
stability and memory analysis (`analysis`), benchmarks of the reversible
engine (`benchmarks`), the experiments that re-check the papers' claims
(`experiments`), robustness to corruptions and attacks (`robustness`), and a
PyTorch peer for speed comparisons (`torch_peer`)."""
