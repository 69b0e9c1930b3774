"""People in the loop: a labelling app over a finished run, its agreement report and its export.

`tasks` reads the task file, `items` draws the items from the run, `db` keeps labels in SQLite,
`auth` turns tokens into sessions, `app` serves the pages and the JSON API, `report` measures
agreement, `export` writes pairs that training and `eval judge` read, `browse` summarises a run
for principle authors.
"""
