"""HTTP route modules; the app includes the ``router`` of each module here."""
