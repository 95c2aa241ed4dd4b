"""The local run and development tools (make run, embedded DynamoDB, template loader, OpenAPI); never deployed."""
