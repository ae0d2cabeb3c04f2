"""The generator: the torch-free contract every process shares (`contract`), the GPU engine
(`engine`), the arq worker that adapts one to the other (`worker`), and `wanbot generate`."""
