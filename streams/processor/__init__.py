"""The processor: consume change events in batches, merge, store, emit."""
