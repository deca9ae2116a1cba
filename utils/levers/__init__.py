"""The optimization levers, one module each. `utils.optimize` lists them (LEVERS) and applies them in their one
right order (optimize()).

A lever module holds everything about its lever:

    Settings                  frozen dataclass: its part of the run config; field names are its flags' names
    Columns                   dataclass: the results columns it records
    add_flags(parser)         its group of command-line flags
    settings(flags, run)      Settings from the parsed flags (`run`: the RunContext: device, preset, world size, ...)
    check(config)             raises UsageError for what cannot work, before any model is built
    columns(config)           the values of its columns known before the run
    label(row)                its words in a row's label in the reports, or None when the lever is off (a row no
                              lever labels is the bf16 eager baseline)
    apply(pipe, config, ...)  what optimize() calls; returns the columns it measured

A lever that changes the model's output rather than only its speed (step caching) also defines changes_output(row),
SECTION_TITLE and SECTION_NOTE: the reports keep its rows in a section of their own.

Adding a lever: one new module here, its entry in `utils.optimize.LEVERS` and one line in `optimize()`.
"""
