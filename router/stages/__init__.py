"""Pipeline stages: one module per bus queue consumer, each a small callable on an Envelope."""
