"""The streamrec CDK app: settings, the stack and one construct per concern."""
