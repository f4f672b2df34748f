"""`ragcds serve`: the HTTP API and the clinician's web page over one loaded index and one generator.

library.py is the only module that calls the answer pipeline; engine.py holds the loaded index (reopened when
CURRENT changes) and the generator; app.py maps HTTP onto them; static/ is the page.
"""
