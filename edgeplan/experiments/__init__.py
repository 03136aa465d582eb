"""Experiments over many solves: method comparisons (:mod:`.compare`), multi-round FL simulations
(:mod:`.fl_rounds`) and plots (:mod:`.plot`)."""
