"""Store connectors: one module per store kind, each implementing the engine's interface
(requests.engine.store.Connector); requests.connectors.registry maps kinds to them."""
