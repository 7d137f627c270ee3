"""The registration pipeline: a pure batcher, transports behind one interface, and the batch writer."""
