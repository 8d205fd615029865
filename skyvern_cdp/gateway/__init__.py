"""The CDP gateway: websocket handshakes checked and forwarded, then bytes piped.

- :mod:`.handshake`: parse, check and rewrite HTTP/1.1 heads; no I/O.
- :mod:`.pipe`: open the upstream, forward the handshake, pipe bytes with backpressure.
- :mod:`.router`: the local backend's router in front of its Chromiums (key checked, 4410
  after the end), as the cloud's router does.

``skyvern_cdp.relay`` builds ``skyvern-cdp relay`` on the same pieces.
"""
