"""Multi-party data: messages, groups, pins, batches, the ordering aggregator and the node component."""
