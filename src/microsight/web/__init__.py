"""A local web app over :mod:`microsight.api` for users who do not use a terminal.

Start it with ``microsight serve``; it needs the ``web`` extra
(``pip install "microsight[web]"``: FastAPI, Jinja2, uvicorn, python-multipart).
The page's only script is htmx (``static/htmx.min.js``, 0BSD), shipped here.
"""
