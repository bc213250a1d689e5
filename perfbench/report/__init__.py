"""The HTML report, rebuilt from a run folder alone (it never re-measures).

- `data`: results.csv and run.json into the tables and summaries the page shows;
- `verdict_view`: a speedup's verdict in words and colour, one rule for tables and charts;
- `profiling_view`: the profiling section and GPU views, from each row's `extra`;
- `charts`: matplotlib SVG charts, inlined so the page opens offline;
- `page`: renders `templates/report.html.j2` and writes report.html atomically;
- `compare_page`: the HTML page of `perfbench compare --html`.
"""
