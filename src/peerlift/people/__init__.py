"""Health profiles (each field with its own visibility), coded lists of conditions and medicines,
"people like me" suggestions and connection requests."""
