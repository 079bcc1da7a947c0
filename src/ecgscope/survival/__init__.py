"""Time-to-event analysis on lifelines and scikit-survival: curves, hazard ratios, concordance, risk groups.

Event codes: 0 censored, 1 the cause of interest, 2+ competing causes. Risk scores: higher = worse.
Functions return numbers and tables; ``report`` draws them.
"""

from ecgscope.survival.concordance import harrell_c, time_dependent_auc, uno_c
from ecgscope.survival.cox import cox_hazard_ratio, fine_gray, fine_gray_data
from ecgscope.survival.curves import cumulative_incidence, event_rate_at, kaplan_meier, logrank
from ecgscope.survival.groups import risk_group_table, risk_groups

__all__ = ["cox_hazard_ratio", "cumulative_incidence", "event_rate_at", "fine_gray", "fine_gray_data", "harrell_c",
           "kaplan_meier", "logrank", "risk_group_table", "risk_groups", "time_dependent_auc", "uno_c"]

from ecgscope._callable import make_callable

make_callable(__name__)  # es.survival(...) is ecgscope.api.survival
