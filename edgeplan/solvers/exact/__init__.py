"""Structure-exploiting exact algorithms (DP, min-cut, bisection, ...), one module per family."""
