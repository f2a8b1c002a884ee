"""HTTP plumbing shared by every domain: the request's unit of work, the signed-in person,
CSRF protection, templates and the error shape."""
