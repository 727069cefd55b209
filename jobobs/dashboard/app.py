"""A minimal job list, until the full dashboard lands."""

from __future__ import annotations

import panel as pn

from jobobs import queries


def app(client) -> pn.viewable.Viewable:
    table = pn.widgets.Tabulator(queries.jobs(client.connection()), disabled=True,
                                 show_index=False, sizing_mode="stretch_width")

    def refresh() -> None:
        table.value = queries.jobs(client.connection())

    pn.state.add_periodic_callback(refresh, period=1000)
    return pn.Column("# jobobs", table, sizing_mode="stretch_width")
