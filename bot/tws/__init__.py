"""The TWS API wire protocol (socket, server version 178) as a library, spoken by the
emulator (`bot.sim.gateway`) and golden-tested against ib_async's real client.

- `framing`: frames, the handshake, field formatting, protocol errors.
- `wire`: message ids, wire contracts and combo legs, the parsed placeOrder, the field cursor.
- `requests` / `place_order`: client -> server parsing (`requests.decode_request`).
- `encode_session`, `encode_market`, `encode_orders`, `encode_account`: server -> client
  messages, one pure function per message.
"""
