"""HTTP glue: the resolver and its one error mapping, shared parameters, the Lambda entry point."""
