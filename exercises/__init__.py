"""Your Llama 3, one exercise at a time: each exNN_<topic>.py is a chapter to read and a stub to fill in."""
