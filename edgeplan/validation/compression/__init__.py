"""Caesar's codecs for real: top-k upload sparsification and the low-deviation download, on real tensors, with
the bytes they put on the wire and the deviation they cause (:mod:`.codecs`)."""
