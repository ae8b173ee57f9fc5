"""The blog domain of the course notes: models, schemas and seed data, given to learners."""
