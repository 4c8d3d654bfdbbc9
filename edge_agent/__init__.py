"""The edge agent: shop-floor signals (OPC UA, Modbus, MQTT) into AAS twins and the time-series store.

connectors -> Reading -> mapping -> Sample -> buffer -> sinks (see DESIGN.md).
"""
