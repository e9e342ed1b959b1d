"""`/sfmc`: the Salesforce Marketing Cloud Journey Builder custom activity "Punchh Offer".

- `GET /sfmc/config.json`: the activity's definition, with HTTPS urls built from the request;
  `GET /sfmc/` (and `/sfmc/index.html`) with `/sfmc/assets/…`: the configuration UI
  (definition.py).
- `POST /sfmc/{save,validate,publish,stop}`: lifecycle calls, JWT bodies (lifecycle.py).
- `POST /sfmc/execute`: once per contact (JWT body); always 200 unless the JWT is bad (401),
  the inArguments are unusable (400) or Redis is down (503): any non-200 ejects the contact
  (execute.py).
- `/sfmc/api/…`: the UI's own calls, authorised by the marketer's Marketing Cloud token
  (ui_api.py, marketer.py).

One blueprint (blueprint.py) holds them all; activity.py is what the connector remembers per
activity, jwt_body.py checks Journey Builder's signatures, and simulator.py is a local Journey
Builder for a local stack (a blueprint of its own).
"""

from connector.sfmc import definition, execute, lifecycle, ui_api
from connector.sfmc.blueprint import bp

__all__ = ["bp", "definition", "execute", "lifecycle", "ui_api"]
