"""The order domain, pure: deciders (``decide`` / ``evolve`` / ``initial_state``) for inventory,
orders, payments and shipping, plus Money and the event codec. Imports only the standard library
and ``cairn.errors``: no I/O, no clock, no random ids.

    from cairn.orders.domain import orders
    events = orders.decide(orders.PlaceOrder(order_id, "tok_ok"), state)
"""
