"""Sans-I/O QUIC 1-RTT packet codec: the pieces an offload needs, and nothing more.

Modules, one concept each: :mod:`.varint`, :mod:`.packet_number`, :mod:`.short_header`,
:mod:`.header_protection`, :mod:`.frames`, :mod:`.frame_classifier`,
:mod:`.packet_builder`, :mod:`.stateless_reset`, and :mod:`.errors` for the exceptions
raised on bad network input.  Keys live in :mod:`quic_offload.crypto`.
"""
