"""The model: the BPNet network, its channels-last speed path, and its weights on disk."""
