"""rkt's API service (``rkt api-service``): rkt's gRPC v1alpha API, with events and logs."""
