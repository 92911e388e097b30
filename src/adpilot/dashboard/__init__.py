"""Server-rendered web dashboard (Jinja2 templates, SVG charts drawn on the server, English and
Chinese). Mounted on the API app by :func:`adpilot.api.create_app`."""
