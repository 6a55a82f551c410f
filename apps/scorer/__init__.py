"""The scoring app: a Faust worker that scores records, learns from delayed labels and takes hot deploys."""
