"""The consumer's Kafka internals: client wiring, the record-batch decoder, rebalance callbacks.

:func:`aggregate.kafka.client.open_group_consumer` builds the group member ``hexpulse consume``
runs (:mod:`aggregate.kafka.records` swaps in the faster decoder, :mod:`aggregate.kafka.rebalance`
forwards rebalances to the consume loop). Shared Kafka plumbing (connection settings, topics,
producers) stays in :mod:`hexpulse.kafka`.
"""
