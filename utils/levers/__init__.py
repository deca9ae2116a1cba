"""The optimization levers, one module each. `utils.optimize` lists them (LEVERS) and applies them in their one
right order (optimize()).

A lever module holds everything about its lever:

    Settings                  frozen dataclass: its part of the run config; field names are its flags' names
    Columns                   dataclass: the results columns it records
    add_flags(parser)         its group of command-line flags
    settings(flags, run)      Settings from the parsed flags (`run`: the RunContext: device, preset, world size, ...)
    check(config)             raises UsageError for what cannot work, before any model is built
    columns(config)           the values of its columns known before the run
    label(row)                its words in a row's label in the reports, or None
    apply(pipe, config, ...)  what optimize() calls; returns the columns it measured

Adding a lever: one new module here, its entry in `utils.optimize.LEVERS` and one line in `optimize()`.
"""
