"""One Lambda function per resource group: services, states, tasks."""
