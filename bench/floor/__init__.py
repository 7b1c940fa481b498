"""The floor: the least a Django async pass-through can cost, served like the gateway.

It forwards ``/<upstream port>/<path>`` to ``http://127.0.0.1:<upstream port>/<path>`` with one
shared aiohttp session and returns the bytes (relays the chunks for paths under ``stream/``); no
middleware, no apps, no database. The gateway's cost above it is what the gateway's own code adds.
"""
