"""Word lists shared by the language-model tasks (written here; each is one GPT-2 token with
its leading space, which benchmark/backends/lm/prompts.py checks at run time rather than assumes)."""
MALE = ("John", "James", "Michael", "David", "Robert", "William", "Richard", "Thomas",
        "Charles", "Daniel", "Matthew", "Mark", "Paul", "Steven", "Andrew", "Kevin", "Brian",
        "George", "Edward", "Peter", "Jason", "Ryan", "Jacob", "Eric", "Adam", "Frank", "Scott",
        "Justin", "Henry", "Jack")
FEMALE = ("Mary", "Sarah", "Jennifer", "Lisa", "Karen", "Nancy", "Betty", "Helen", "Sandra",
          "Emily", "Laura", "Rachel", "Anna", "Amy", "Emma", "Kate", "Julia", "Grace", "Alice",
          "Susan", "Linda", "Jessica", "Elizabeth", "Michelle", "Amanda", "Rebecca", "Sophie",
          "Lucy", "Claire", "Diana")
NAMES = MALE + FEMALE
