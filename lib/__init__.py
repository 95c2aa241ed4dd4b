"""Context Services on AWS Lambda: everything that is not HTTP."""
