"""Plans and scenarios as files (:mod:`.plans`, :mod:`.scenarios`) and the exports runtimes read (:mod:`.export`)."""
