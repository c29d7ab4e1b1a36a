"""Directory adapters: where a professional's MSSanté address comes from."""
